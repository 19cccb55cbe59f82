from django.urls import path

from . import api

urlpatterns = [
    path("missions", api.MissionListCreateApi.as_view(), name="api-missions"),
    path("missions/<int:mission_id>", api.MissionDetailApi.as_view(), name="api-mission"),
    path("missions/<int:mission_id>/pledges", api.PledgeApi.as_view(), name="api-mission-pledges"),
    path("missions/<int:mission_id>/events", api.MissionEventsApi.as_view(), name="api-mission-events"),
    *(
        path(f"missions/<int:mission_id>/{decision}", api.MissionDecideApi.as_view(decision=decision),
             name=f"api-mission-{decision}")
        for decision in ("accept", "reject", "success", "fail")
    ),
]  # fmt: skip
