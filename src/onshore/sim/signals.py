"""What a simulated vehicle sends: its signals in two dialects, gear values, vendor signals, invented media.

Most vehicles name signals the fleet-telemetry way, some the COVESA VSS way; the order of ``SIGNAL_NAMES`` is
the order of ``SimulatedVehicle.readings()``. Units: km/h, km, %, V, degrees Celsius.
"""

from __future__ import annotations

from typing import Any

FLEET_TELEMETRY = "fleet_telemetry"
VSS = "vss"
# Positions in SimulatedVehicle.readings() that need a wire form.
LOCATION, GEAR, DESTINATION = 3, 5, 6
SIGNAL_NAMES: dict[str, tuple[str, ...]] = {
    FLEET_TELEMETRY: (
        "VehicleSpeed", "Odometer", "Soc", "Location", "GpsHeading", "Gear", "DestinationLocation",
        "DriverSeatOccupied", "MediaNowPlayingArtist", "MediaNowPlayingTitle", "PackVoltage", "OutsideTemp",
    ),
    VSS: (
        "Vehicle.Speed",
        "Vehicle.TraveledDistance",
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "Vehicle.CurrentLocation",
        "Vehicle.CurrentLocation.Heading",
        "Vehicle.Powertrain.Transmission.SelectedGear",
        "Vehicle.Cabin.Infotainment.Navigation.DestinationSet",
        "Vehicle.Cabin.Seat.Row1.DriverSide.IsOccupied",
        "Vehicle.Cabin.Infotainment.Media.Played.Artist",
        "Vehicle.Cabin.Infotainment.Media.Played.Track",
        "Vehicle.Powertrain.TractionBattery.CurrentVoltage",
        "Vehicle.Exterior.AirTemperature",
    ),
}  # fmt: skip
GEAR_VALUES: dict[str, dict[str, Any]] = {
    FLEET_TELEMETRY: {"D": "ShiftStateD", "P": "ShiftStateP"},
    VSS: {"D": 127, "P": 126},
}
UNKNOWN_SIGNALS = ("VendorExperimentalFoo", "VendorExperimentalBarLevel", "VendorProtoTorqueSplit")
# Invented artists and titles; none names a real person or work.
MEDIA_TRACKS = (
    ("Lumen Parade", "Harbour Lights at Noon"),
    ("The Quiet Hertz", "Signal Fade"),
    ("Marigold Static", "Paper Satellites"),
    ("Orbit Lane Ensemble", "Ring Road Waltz"),
    ("Velvet Odometer", "Ninety Kilometres"),
    ("Cobalt Tramline", "Amber Crossing"),
    ("模拟乐团", "晨雾公路"),
)
