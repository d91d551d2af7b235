from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PushProvider(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_PROVIDER_UNSPECIFIED: _ClassVar[PushProvider]
    PUSH_PROVIDER_APNS: _ClassVar[PushProvider]
    PUSH_PROVIDER_FCM: _ClassVar[PushProvider]

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_PUSH: _ClassVar[Channel]
    CHANNEL_INBOX: _ClassVar[Channel]
    CHANNEL_PUSH_AND_INBOX: _ClassVar[Channel]
PUSH_PROVIDER_UNSPECIFIED: PushProvider
PUSH_PROVIDER_APNS: PushProvider
PUSH_PROVIDER_FCM: PushProvider
CHANNEL_UNSPECIFIED: Channel
CHANNEL_PUSH: Channel
CHANNEL_INBOX: Channel
CHANNEL_PUSH_AND_INBOX: Channel

class DeviceTokenRegistered(_message.Message):
    __slots__ = ("provider", "device_token", "locale", "opted_in")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    OPTED_IN_FIELD_NUMBER: _ClassVar[int]
    provider: PushProvider
    device_token: str
    locale: str
    opted_in: bool
    def __init__(self, provider: _Optional[_Union[PushProvider, str]] = ..., device_token: _Optional[str] = ..., locale: _Optional[str] = ..., opted_in: _Optional[bool] = ...) -> None: ...

class NotificationRequested(_message.Message):
    __slots__ = ("template_id", "params", "channel", "campaign_id")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    template_id: str
    params: _containers.ScalarMap[str, str]
    channel: Channel
    campaign_id: str
    def __init__(self, template_id: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., channel: _Optional[_Union[Channel, str]] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class NotificationSent(_message.Message):
    __slots__ = ("notification_id", "channel", "provider", "template_id")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    channel: Channel
    provider: PushProvider
    template_id: str
    def __init__(self, notification_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., provider: _Optional[_Union[PushProvider, str]] = ..., template_id: _Optional[str] = ...) -> None: ...

class NotificationFailed(_message.Message):
    __slots__ = ("notification_id", "channel", "provider", "template_id", "reason", "permanent")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PERMANENT_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    channel: Channel
    provider: PushProvider
    template_id: str
    reason: str
    permanent: bool
    def __init__(self, notification_id: _Optional[str] = ..., channel: _Optional[_Union[Channel, str]] = ..., provider: _Optional[_Union[PushProvider, str]] = ..., template_id: _Optional[str] = ..., reason: _Optional[str] = ..., permanent: _Optional[bool] = ...) -> None: ...
