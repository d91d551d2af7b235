import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Store(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STORE_UNSPECIFIED: _ClassVar[Store]
    STORE_APPLE: _ClassVar[Store]
    STORE_GOOGLE: _ClassVar[Store]

class RejectionReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECTION_REASON_UNSPECIFIED: _ClassVar[RejectionReason]
    REJECTION_REASON_INVALID_SIGNATURE: _ClassVar[RejectionReason]
    REJECTION_REASON_MALFORMED_RECEIPT: _ClassVar[RejectionReason]
    REJECTION_REASON_PRODUCT_MISMATCH: _ClassVar[RejectionReason]
    REJECTION_REASON_ALREADY_CONSUMED: _ClassVar[RejectionReason]
    REJECTION_REASON_REFUNDED: _ClassVar[RejectionReason]
    REJECTION_REASON_WRONG_ENVIRONMENT: _ClassVar[RejectionReason]
STORE_UNSPECIFIED: Store
STORE_APPLE: Store
STORE_GOOGLE: Store
REJECTION_REASON_UNSPECIFIED: RejectionReason
REJECTION_REASON_INVALID_SIGNATURE: RejectionReason
REJECTION_REASON_MALFORMED_RECEIPT: RejectionReason
REJECTION_REASON_PRODUCT_MISMATCH: RejectionReason
REJECTION_REASON_ALREADY_CONSUMED: RejectionReason
REJECTION_REASON_REFUNDED: RejectionReason
REJECTION_REASON_WRONG_ENVIRONMENT: RejectionReason

class PurchaseReceiptSubmitted(_message.Message):
    __slots__ = ("store", "product_id", "transaction_id", "receipt", "purchase_token", "currency", "price_micros")
    STORE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    store: Store
    product_id: str
    transaction_id: str
    receipt: bytes
    purchase_token: str
    currency: str
    price_micros: int
    def __init__(self, store: _Optional[_Union[Store, str]] = ..., product_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., receipt: _Optional[bytes] = ..., purchase_token: _Optional[str] = ..., currency: _Optional[str] = ..., price_micros: _Optional[int] = ...) -> None: ...

class PurchaseVerified(_message.Message):
    __slots__ = ("store", "product_id", "transaction_id", "original_transaction_id", "environment", "purchased_at")
    STORE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    PURCHASED_AT_FIELD_NUMBER: _ClassVar[int]
    store: Store
    product_id: str
    transaction_id: str
    original_transaction_id: str
    environment: str
    purchased_at: _timestamp_pb2.Timestamp
    def __init__(self, store: _Optional[_Union[Store, str]] = ..., product_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., original_transaction_id: _Optional[str] = ..., environment: _Optional[str] = ..., purchased_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PurchaseRejected(_message.Message):
    __slots__ = ("store", "product_id", "transaction_id", "reason", "detail")
    STORE_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    store: Store
    product_id: str
    transaction_id: str
    reason: RejectionReason
    detail: str
    def __init__(self, store: _Optional[_Union[Store, str]] = ..., product_id: _Optional[str] = ..., transaction_id: _Optional[str] = ..., reason: _Optional[_Union[RejectionReason, str]] = ..., detail: _Optional[str] = ...) -> None: ...

class PurchaseRefunded(_message.Message):
    __slots__ = ("store", "transaction_id", "refunded_at")
    STORE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    REFUNDED_AT_FIELD_NUMBER: _ClassVar[int]
    store: Store
    transaction_id: str
    refunded_at: _timestamp_pb2.Timestamp
    def __init__(self, store: _Optional[_Union[Store, str]] = ..., transaction_id: _Optional[str] = ..., refunded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
