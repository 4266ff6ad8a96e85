from django.urls import path

from cluster import views

urlpatterns = [
    path("", views.RootView.as_view(), name="home"),
    path("_health", views.LivenessView.as_view(), name="health"),
    path("_health/ready", views.ReadinessView.as_view(), name="health-ready"),
    path("_cluster/health", views.ClusterHealthView.as_view(), name="cluster-health"),
]
