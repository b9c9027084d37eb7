"""Generation: the LLM Protocol, its providers, resilience wrappers, routing, pricing and answer assembly."""
