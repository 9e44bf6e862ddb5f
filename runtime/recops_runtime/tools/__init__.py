"""Client tools (load generator, Python client, sequence reader); the server never imports them."""
