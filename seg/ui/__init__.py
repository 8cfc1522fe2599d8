"""Streamlit-aware helpers of the app; the only part of ``seg`` that imports streamlit.

Modules
-------
state         session-state keys (``seg.*`` data, ``w_*`` widgets) and per-session records
config        pixel limits, display size, the in-app hint
samples       bundled scikit-image sample images
canvas        the drawing canvas: key, geometry, reading strokes before it is drawn
pipeline      strokes -> labels -> features -> model -> prediction, doing only what changed
views         the canvas background (image + segmentation / uncertainty / probability)
classes       the class editor (add, rename, recolour, remove) and active class
settings      feature presets and forest settings widgets
uploads       image, annotations and model uploads
downloads     download buttons generating their files on click
measurements  per-class / per-object tables and charts, over frames for stacks
page          the main page's sections, called in order by ``streamlit_app.py``
text          markdown escaping and safe file names for user-supplied text

Other pages may import from here; ``st.session_state["seg.model"]`` holds the session's model.
"""
