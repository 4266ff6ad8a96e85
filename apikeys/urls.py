from django.urls import path

from apikeys import views

urlpatterns = [
    path("", views.home, name="home"),
]
