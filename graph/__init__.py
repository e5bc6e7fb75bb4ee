"""The GraphQL face of the service: schema, types, resolvers, loaders and the web app."""
