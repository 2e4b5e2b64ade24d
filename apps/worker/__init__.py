"""Celery worker: processes user records from the Redis list that KEDA watches."""
