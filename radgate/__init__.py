"""radgate: an open-source AI gateway for medical imaging. Infrastructure, not a medical device."""

__version__ = "0.1.0"
