"""Lending business rules and the services that apply them."""
