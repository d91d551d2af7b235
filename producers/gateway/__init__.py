"""The reference HTTP gateway (aiohttp): authenticated players post events, it publishes them."""

from producers.gateway.app import EventPublisher, create_app
from producers.gateway.auth import PLAYER_ID, player_id_of

__all__ = ["PLAYER_ID", "EventPublisher", "create_app", "player_id_of"]
