"""Turning a trained student into files people can run elsewhere: a GGUF file, an Ollama
Modelfile, a model card and a report. Pure text building lives here; the `package` stage only
wires it to the job (jinja2 and gguf are imported inside, so importing this package stays cheap)."""
