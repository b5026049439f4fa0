"""What registries reached over an API share: transport, state store, polling."""
