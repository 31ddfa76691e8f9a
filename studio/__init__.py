"""MSPN Studio: the demo's session and view-model, in plain Python (no Gradio import).

``app.py`` lays out the Gradio page and wires each event to one method of
:class:`studio.page.Studio`; everything the page shows is computed here and in
:mod:`sdr_core`, so it can be tested without a browser. Modules, each importing only the
ones listed before it (and ``sdr_core``, never the reverse):

- :mod:`studio.scene`: scenes (image, ground truth, D0, camera), the gallery, the initial
  depth sources and the optional estimators loaded in the background;
- :mod:`studio.session`: one user's state (points, hole, the last run's record) and the
  sparse depth S built from it;
- :mod:`studio.widgets`: what the widgets send and show (radio labels, the log slider,
  clicks on upscaled views, brush layers, markdown);
- :mod:`studio.run`: a refinement streamed frame by frame, its metrics table and downloads;
- :mod:`studio.teaching`: one pixel's attention window at the frame shown;
- :mod:`studio.page`: one method per UI event, returning what the page changes.
"""
