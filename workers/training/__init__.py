"""Student training helpers (torch/TRL are imported inside, so importing this package stays cheap)."""
