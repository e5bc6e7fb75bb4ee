"""Services: apply the pure rules through repositories, inside the caller's transaction."""
