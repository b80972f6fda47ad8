"""verbcal service: storage, REST API, jobs, LLM elicitation and dashboard."""
