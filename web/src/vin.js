// A VIN taken apart (ISO 3779): world manufacturer identifier, descriptor, check digit,
// model-year code, plant and serial. The platform decodes maker and model year itself.

export function vinParts(vin) {
  return [
    ["WMI (manufacturer)", vin.slice(0, 3)],
    ["Descriptor (VDS)", vin.slice(3, 8)],
    ["Check digit", vin.slice(8, 9)],
    ["Model-year code", vin.slice(9, 10)],
    ["Plant", vin.slice(10, 11)],
    ["Serial", vin.slice(11)],
  ];
}
