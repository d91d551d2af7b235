"""The publisher library for gateway services, and the reference HTTP gateway."""
