"""The GraphQL object types, one module per domain, with their filter and order inputs.

Types link to types of other modules in one direction by plain imports; the few links back
(an instalment's loan, an application's applicant …) are ``strawberry.lazy`` annotations, and
relations resolve through graph.relations, so no module imports another inside a function.
Importing the package imports every type (``node(id:)`` can return any of them).
"""

from graph.types import applicants, applications, audit, loans, previews, products, servicing

__all__ = ["applicants", "applications", "audit", "loans", "previews", "products", "servicing"]
