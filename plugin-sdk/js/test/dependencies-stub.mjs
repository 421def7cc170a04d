// Outside a component no host holds outputs: requests carry them in `deps`.
export function output(_node) {
  return undefined;
}
