// Subscribes to loanEvents with a client frontends use, and prints what it receives.
//
//   node subscribe.mjs <client> <http url of /graphql> <api key> <events>
//
// <client>: graphql-ws (its own client), apollo-ws (Apollo Client's GraphQLWsLink) or
// apollo-http (Apollo Client's HttpLink, which sends a subscription over HTTP as multipart).
// Prints "subscribed" once the subscription is sent, then one JSON line per result; exits 0
// after <events> results, 1 on an error, 2 when nothing more came within 30 seconds.
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [kind, url, key, wanted] = process.argv.slice(2);
const QUERY = `subscription Watch {
  loanEvents { type applicationId application { status decisions { outcome } } }
}`;
const authorization = { Authorization: `Bearer ${key}` };
const wsUrl = url.replace(/^http/, "ws");
let received = 0;
let watchdog = setTimeout(() => process.exit(2), 30_000);

function heard(result) {
  console.log(JSON.stringify({ data: result.data ?? null, errors: result.errors ?? null }));
  clearTimeout(watchdog);
  watchdog = setTimeout(() => process.exit(2), 30_000);
  received += 1;
  if (received >= Number(wanted)) process.exit(0);
}

function failed(error) {
  console.log(JSON.stringify({ failure: String(error?.message ?? error) }));
  process.exit(1);
}

if (kind === "graphql-ws") {
  const client = createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: authorization });
  client.subscribe({ query: QUERY }, { next: heard, error: failed, complete: () => failed("completed") });
} else {
  const link =
    kind === "apollo-ws"
      ? new GraphQLWsLink(
          createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: authorization }),
        )
      : new HttpLink({ uri: url, headers: authorization });
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  client
    .subscribe({ query: gql(QUERY) })
    .subscribe({ next: heard, error: failed, complete: () => failed("completed") });
}
console.log("subscribed");
