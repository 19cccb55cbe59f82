from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("missions/new", views.mission_new, name="mission-new"),
    path("missions/<int:mission_id>", views.mission_detail, name="mission-detail"),
    path("missions/<int:mission_id>/pledge", views.mission_pledge, name="mission-pledge"),
    path("missions/<int:mission_id>/decide", views.mission_decide, name="mission-decide"),
    path("streamers/suggest", views.streamer_suggest, name="streamer-suggest"),
    path("streamers/<str:username>", views.streamer_channel, name="streamer-channel"),
    path("wallet", views.wallet, name="wallet"),
    path("dashboard", views.dashboard, name="dashboard"),
    path("overlay/<str:username>", views.overlay, name="overlay"),
    path("staff/monitoring", views.monitoring, name="staff-monitoring"),
    path("staff/monitoring/ledger-check", views.monitoring_ledger_check, name="staff-ledger-check"),
]
