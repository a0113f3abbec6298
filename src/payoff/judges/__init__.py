"""LLM judges as rewards: backends (`backends`: a local transformers model, any OpenAI-compatible
server), judge kinds (`kinds`), versioned templates (`templates`) and the master-key guard
(`guard`)."""
