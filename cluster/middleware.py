"""The health probes, answered before anything that could fail for reasons of its own."""

from cluster.views import LivenessView, ReadinessView


class HealthProbeMiddleware:
    """Answers ``/_health`` and ``/_health/ready`` right after the security headers: before the host
    check, since a balancer or Kubernetes asks by address (``Host: 10.0.0.5:8443``), which
    ``ALLOWED_HOSTS`` would refuse; and before the sessions and the background purge, which would
    have a liveness probe touch the cache and the database it must not depend on."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.probes = {"/_health": LivenessView.as_view(), "/_health/ready": ReadinessView.as_view()}

    def __call__(self, request):
        probe = self.probes.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        # Django renders a view's response once the view returns; called from here, it is rendered here.
        return probe(request).render()
