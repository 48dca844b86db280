"""What the app needs to serve searchcore from a web page, apart from the page itself.

* :mod:`searchcore.serve.lifecycle`: which bundle is served, the engine built once on a background thread, its
  progress and its retry after a failed build. No Gradio; importing it imports nothing heavy.
* :mod:`searchcore.serve.page`: the Gradio side: components, the formatting of results, and the translation of
  what a request sent (files, data: URLs, counts) and of searchcore's errors into Gradio's.

Nothing is imported here, so ``import searchcore.serve.lifecycle`` stays cheap.
"""
