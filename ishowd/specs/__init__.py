"""What each source measures and reads, as plain data: its metrics and its config keys.

One module per source (or per family of sources that emit the same metrics,
as the GPU's do). Each has ``METRICS`` and, where it reads config keys,
``KEYS``; the code that reads the hardware (``ishowd/collectors/``) imports
its metrics from here, and ``ishowd/catalog.py`` gathers every module into the
config schema and the metric registry. Of ishowd, these modules import only
``ishowd.metrics`` and ``ishowd.config``, so ``ishowctl`` learns every metric's
unit and help without importing the code that reads the hardware.
"""
