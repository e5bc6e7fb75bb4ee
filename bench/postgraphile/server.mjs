// PostGraphile v5 over the lending tables: the `public` schema at POST /graphql on 127.0.0.1.
//
//   DATABASE_URL=postgresql://postgres:@/lending_bench_1?host=/path/.pgdata-bench PORT=5678 \
//     bench/.work/node22/node_modules/.bin/node bench/postgraphile/server.mjs
//
// Production-like: no GraphiQL, no watch mode, no EXPLAIN in responses, no subscriptions,
// Grafast in production mode. Relations come from the foreign keys; with simplify-inflection
// they read `applicant`, `decisionsByApplicationId`, `loanByApplicationId`, `installments`
// (bench/queries.py maps our documents onto them).

import { createServer } from "node:http";
import process from "node:process";

// Read when Grafast loads, so set before the imports below (which are therefore dynamic).
process.env.GRAPHILE_ENV ??= "production";
process.env.NODE_ENV ??= "production";

const { PgSimplifyInflectionPreset } = await import("@graphile/simplify-inflection");
const { postgraphile } = await import("postgraphile");
const { TYPES } = await import("postgraphile/@dataplan/pg");
const { makePgService } = await import("postgraphile/adaptors/pg");
const { grafserv } = await import("postgraphile/grafserv/node");
const { PostGraphileAmberPreset } = await import("postgraphile/presets/amber");
const { extendSchema, gql } = await import("postgraphile/utils");

// The pg driver reads a Unix-socket directory from `?host=/dir` (or `?host=%2Fdir`) itself,
// with postgres:// or postgresql://; only a SQLAlchemy-style `postgresql+driver://` is renamed.
function connectionString() {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error("DATABASE_URL is required");
    process.exit(2);
  }
  return url.replace(/^postgresql\+\w+:\/\//, "postgresql://");
}

// `totalDue` is not a column: the lending service derives it as principal plus interest. Here
// the same derivation is an SQL expression in PostGraphile's own SELECT (a computed column
// would need a database function, and the bench database belongs to the lending service).
const InstallmentTotalDuePlugin = extendSchema({
  typeDefs: gql`
    extend type Installment {
      "Principal plus interest."
      totalDue: BigFloat!
    }
  `,
  objects: {
    Installment: {
      plans: {
        totalDue($installment) {
          return $installment.select(
            (sql) => sql`(${$installment}.principal_due + ${$installment}.interest_due)`,
            TYPES.numeric,
            true,
          );
        },
      },
    },
  },
});

const port = Number.parseInt(process.env.PORT ?? "5678", 10);
const host = "127.0.0.1";

/** @type {GraphileConfig.Preset} */
const preset = {
  extends: [PostGraphileAmberPreset, PgSimplifyInflectionPreset],
  plugins: [InstallmentTotalDuePlugin],
  pgServices: [
    makePgService({
      connectionString: connectionString(),
      schemas: ["public"],
      // Ten connections, as many as the lending service's pool keeps.
      poolConfig: { max: 10, application_name: "postgraphile" },
      pubsub: false,
    }),
  ],
  grafserv: {
    port,
    host,
    graphqlPath: "/graphql",
    graphiql: false,
    watch: false,
    websockets: false,
  },
  grafast: {
    explain: false,
  },
};

const pgl = postgraphile(preset);
const serv = pgl.createServ(grafserv);
const server = createServer();
server.on("error", (error) => {
  console.error(error);
  process.exit(1);
});
await serv.addTo(server);
// Introspect and build the schema before accepting requests, so the first one is not slow.
await pgl.getSchema();
server.listen(port, host, () => {
  console.log(`PostGraphile listening on http://${host}:${port}/graphql`);
});

async function shutdown() {
  // Leave within two seconds whatever is still open (idle keep-alive sockets, pool clients).
  setTimeout(() => process.exit(0), 2000).unref();
  server.close();
  server.closeAllConnections();
  await pgl.release();
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
