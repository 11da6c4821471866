"""peerpool: analytics for a cooperative Internet Exchange Point and its pooled transit purchasing."""

__version__ = "0.1.0"
