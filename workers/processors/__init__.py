"""The domain processors, one module each."""
