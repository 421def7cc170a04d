export async function resolve(specifier, context, next) {
  if (specifier === "flow:plugin/host@0.1.0") {
    return { url: new URL("./host-stub.mjs", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
