"""Guardrails on the three places of the spine: the incoming question, the retrieved context, the outgoing answer."""
