"""Churn risk (public import path): label definitions, point-in-time features, the model,
training with out-of-time evaluation, scoring with reasons, and the snapshot mode."""

from retentio.analytics.churn.features import FEATURES, build_features
from retentio.analytics.churn.labels import LabelSpec, labels
from retentio.analytics.churn.model import ChurnModel
from retentio.analytics.churn.tabular import cross_validate
from retentio.analytics.churn.train import plan, score, train

__all__ = ["FEATURES", "ChurnModel", "LabelSpec", "build_features", "cross_validate", "labels", "plan", "score",
           "train"]
