"""Application privileges, as Elasticsearch stores them: a named set of actions of an application
that lives outside Keyward (Kibana is the best known), which roles grant on resources."""

from django.db import models

# Longest application and privilege name stored; Elasticsearch sets none, a column needs one.
MAX_NAME_LENGTH = 256


class ApplicationPrivilege(models.Model):
    application = models.CharField(max_length=MAX_NAME_LENGTH)
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    # Action patterns, such as "data:read/*"; at least one.
    actions = models.JSONField(default=list)
    metadata = models.JSONField(default=dict)

    class Meta:
        ordering = ["application", "name"]
        constraints = [
            models.UniqueConstraint(fields=["application", "name"], name="application_privilege_unique_name"),
        ]

    def __str__(self):
        return f"{self.application}:{self.name}"

    def as_elasticsearch(self) -> dict:
        """The privilege in the shape of Elasticsearch's get privileges API."""
        return {
            "application": self.application, "name": self.name,
            "actions": self.actions, "metadata": self.metadata,
        }
