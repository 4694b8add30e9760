"""The stages of ``lrpredict.suggest``, in the order it calls them (issue 21: a pipeline a reader can follow):

1. :mod:`~lrpredict.pipeline.resolve` — the law (given, or the default for the run) and its variables N, D, M, C, B;
2. :mod:`~lrpredict.pipeline.predict` — the point prediction: LR, optimal batch, the LR at your batch, weight decay
   and the schedule, with the derivation factor by factor;
3. :mod:`~lrpredict.pipeline.uncertainty` — how far to trust it: the Eq.2 band, the law's domain, unconfirmed
   coefficients, and a calibrated law's posterior interval or the widening for extrapolation;
4. :mod:`~lrpredict.pipeline.context` — what surrounds it: the laws' disagreement, sanity of the numbers, the nearest
   published runs.

Each stage reads the records of the stages before it (:mod:`~lrpredict.pipeline.state`) and returns its own; the
warnings of the Suggestion are the stages' warnings in this order.  ``lrpredict.suggest`` assembles the Suggestion.
This file imports nothing: ``import lrpredict.pipeline.state`` stays cheap."""
