"""Tasks: problem generators, prompt/solution text and answer verifiers."""
