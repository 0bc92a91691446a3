"""Hot reload: a changed spec (a saved file, an admin PATCH, `flowspec patch`) validated whole,
diffed against the running version, planned per field by its mutability class, and applied to
live sessions with the provider's confirmation."""
