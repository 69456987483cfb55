"""The retraining loop: challenger against champion, promotion under a change control plan, active learning,
pooling with peer sites."""
