"""The HTTP edge: the FastAPI app, problem+json errors, routes, SSE and the OpenAI-compatible endpoint."""
