from django.urls import path

from . import api

urlpatterns = [
    path("users/me", api.UserMeApi.as_view(), name="api-users-me"),
    path("wallet", api.WalletApi.as_view(), name="api-wallet"),
    path("wallet/topups", api.TopupApi.as_view(), name="api-wallet-topups"),
    path("wallet/transactions", api.WalletTransactionsApi.as_view(), name="api-wallet-transactions"),
]
