"""One module per notebook, each registering that notebook's typed parameter spec.

Modules here are discovered automatically by :func:`compendium.notebook.load_specs`:
adding a notebook is adding ``notebooks/<name>.ipynb``, ``params/<name>/*.yaml`` and one
module here.
"""
