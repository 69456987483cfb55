"""The HTTP layer: DICOMweb, the JSON API and pages. Routes parse, call a service, return a schema."""

from radgate.web.app import create_app

__all__ = ["create_app"]
