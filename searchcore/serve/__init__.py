"""Serving: the searches over a bundle, a visitor's own photos, and what the app needs to serve them on a page.

* :mod:`searchcore.serve.engine`: :class:`SearchEngine`, the five searches and photo + words over one bundle (or a
  visitor's photos), each read from the bundle's indexes; :func:`load_engine` takes a Hub repo id or a folder.
* :mod:`searchcore.serve.personal`: a visitor's private collection, its own trained head, the bounded store of
  them; :mod:`searchcore.serve.uploads`: uploaded files and zips read safely.
* :mod:`searchcore.serve.lifecycle`: which bundle is served, the engine built once on a background thread, its
  progress and its retry after a failed build. No Gradio; importing it imports nothing heavy.
* The page's Gradio side: :mod:`~searchcore.serve.page` (components, results, what a request may send, errors
  translated), :mod:`~searchcore.serve.tabs` (the tabs' layouts), :mod:`~searchcore.serve.my_photos` ("Your
  photos") and :mod:`~searchcore.serve.map` (the Map tab), the only modules that import Gradio; and
  :mod:`~searchcore.serve.pagetext`, the page's Markdown.

It stands on every floor below it (tests/test_imports.py): models, the bundle's files, quality (a visitor's own head
is measured) and build (the offline demo bundle is built on a fresh machine). Nothing is imported here, so
``import searchcore.serve.lifecycle`` stays cheap.
"""
