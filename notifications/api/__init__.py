"""The HTTP API (``/api/v1/``): Django REST framework views over ``notifications.services`` and
``notifications.selectors``, described by drf-spectacular. See README "HTTP API"."""
