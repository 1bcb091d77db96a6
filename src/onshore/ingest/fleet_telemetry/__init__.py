"""Tesla fleet-telemetry in: its protobuf schema, its values in onshore's stored form, its messages as records.

The HTTP route (``http``) and the MQTT adapter share these pieces; none of them reaches past the ingest seam:
they end in `WireRecord` lists per vehicle, which ``IngestService.ingest_vehicles`` admits into the same
`RecordBatch` onshore's own JSON path produces.

* `schema`: the messages (``V`` ``Payload``, ``alerts``, ``errors``, ``connectivity``) in a pool of their own;
* `values`: a ``Value`` (or a dispatcher's per-field JSON value) in its stored form;
* `records`: messages and single datums as records, with message ids made from what the message carries;
* `decode`: a request body (protobuf, JSON, NDJSON) to messages, refusing unknown fields;
* `batches`: decoded messages grouped into one record list per vehicle.
"""

from onshore.ingest.fleet_telemetry.batches import VehicleRecords, by_vehicle
from onshore.ingest.fleet_telemetry.decode import decode_request, parse_json, parse_protobuf
from onshore.ingest.fleet_telemetry.records import (
    RECORD_TYPE_SIGNALS,
    VehicleMessage,
    alert_record,
    connectivity_record,
    error_record,
    field_record,
    message_records,
)
from onshore.ingest.fleet_telemetry.schema import FIELD_NAMES, FIELD_NUMBERS, MESSAGES, RecordType
from onshore.ingest.fleet_telemetry.values import dispatcher_value, stored_value

__all__ = [
    "FIELD_NAMES",
    "FIELD_NUMBERS",
    "MESSAGES",
    "RECORD_TYPE_SIGNALS",
    "RecordType",
    "VehicleMessage",
    "VehicleRecords",
    "alert_record",
    "by_vehicle",
    "connectivity_record",
    "decode_request",
    "dispatcher_value",
    "error_record",
    "field_record",
    "message_records",
    "parse_json",
    "parse_protobuf",
    "stored_value",
]
