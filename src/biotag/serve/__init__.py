"""The REST service and web page of ``biotag serve`` (FastAPI + uvicorn).

>>> from biotag.serve import ServeSettings, create_app
>>> app = create_app(ServeSettings(model="path/to/model", max_chars=100_000))
"""

from biotag.serve.app import InferenceRunner, create_app, load_annotator
from biotag.serve.settings import ServeSettings, read_api_keys_file

__all__ = ["InferenceRunner", "ServeSettings", "create_app", "load_annotator", "read_api_keys_file"]
