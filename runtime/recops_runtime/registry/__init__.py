"""The version registry: loaded versions, the traffic split and the admin calls that change them."""
