"""Who people are (SPEC §1): realms, users that belong to exactly one realm, and roles."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac


class Realm(models.Model):
    """Where a user's identity comes from. The chain order is kept in step with settings."""

    NATIVE = "native"
    FILE = "file"
    TYPE_CHOICES = [(NATIVE, "native"), (FILE, "file")]

    name = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=16, choices=TYPE_CHOICES)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order", "name"]

    def __str__(self):
        return self.name


class Role(models.Model):
    """A named set of cluster, index and application privileges, in Elasticsearch's role descriptor shape."""

    name = models.CharField(max_length=256, unique=True)
    cluster = models.JSONField(default=list, blank=True)
    indices = models.JSONField(default=list, blank=True)
    # [{application, privileges, resources}]: privileges of applications outside Keyward (e.g. Kibana).
    applications = models.JSONField(default=list, blank=True)
    run_as = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    description = models.TextField(blank=True, default="")
    built_in = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def descriptor(self) -> dict:
        """The role as an Elasticsearch role descriptor, as stored in an API key's limited_by."""
        descriptor = {
            "cluster": list(self.cluster),
            "indices": [dict(entry) for entry in self.indices],
            "applications": [dict(entry) for entry in self.applications],
            "run_as": list(self.run_as),
            "metadata": dict(self.metadata),
        }
        return descriptor | ({"description": self.description} if self.description else {})


class UserManager(BaseUserManager):
    def get_by_natural_key(self, key):
        realm_name, _, username = key.partition("/")
        return self.get(realm__name=realm_name, username=username)


class User(AbstractBaseUser):
    """A person in one realm: the same username in two realms is two different people."""

    realm = models.ForeignKey(Realm, on_delete=models.PROTECT, related_name="users")
    username = models.CharField(max_length=1024)
    full_name = models.CharField(max_length=512, blank=True)
    email = models.EmailField(max_length=512, blank=True)
    enabled = models.BooleanField(default=True)
    metadata = models.JSONField(default=dict, blank=True)
    roles = models.ManyToManyField(Role, blank=True, related_name="users")
    date_joined = models.DateTimeField(auto_now_add=True)
    # Part of every login session's hash: raising it ends the user's sessions (see services).
    session_generation = models.PositiveIntegerField(default=0, editable=False)

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    objects = UserManager()

    class Meta:
        ordering = ["realm__order", "username"]
        constraints = [
            models.UniqueConstraint(fields=["realm", "username"], name="user_username_unique_per_realm"),
        ]
        indexes = [models.Index(Lower("username"), name="user_username_lower")]

    def __str__(self):
        return f"{self.username} ({self.realm.name})"

    @property
    def is_active(self):
        return self.enabled

    def natural_key(self):
        return (f"{self.realm.name}/{self.username}",)

    def _get_session_auth_hash(self, secret=None):
        """Django's HMAC of the password, with the session generation mixed in once it is raised;
        at generation 0 it is Django's own, so sessions made before the field existed stay valid."""
        if not self.session_generation:
            return super()._get_session_auth_hash(secret)
        return salted_hmac(
            "accounts.User.session_generation",
            f"{self.session_generation}:{self.password}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()

    def role_descriptors(self) -> dict:
        """The user's roles as ``{role name: descriptor}``, the shape of an API key's limited_by."""
        return {role.name: role.descriptor() for role in self.roles.all()}


class AuditEvent(models.Model):
    """One security-relevant event: who did what to which keys, users or roles, and the outcome.

    Written by ``accounts.audit.record`` only. It never holds a secret: key ids and names, never
    the ``api_key`` part of a credential.
    """

    SUCCESS = "success"
    FAILURE = "failure"

    time = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=16, default=SUCCESS)
    # Who acted: a user row when there is one, and its name and realm as they were at the time.
    actor = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    actor_username = models.CharField(max_length=1024, blank=True)
    actor_realm = models.CharField(max_length=64, blank=True)
    via_api_key = models.CharField(max_length=20, blank=True)
    # What it was done to: a user, role or key name, and the ids of the keys concerned.
    target = models.CharField(max_length=1024, blank=True)
    api_key_ids = models.JSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=0)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        indexes = [models.Index(fields=["action", "-time"], name="auditevent_action_time")]

    def __str__(self):
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"
