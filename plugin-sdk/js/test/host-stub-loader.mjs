export async function resolve(specifier, context, next) {
  if (specifier === "flow:plugin/host@0.1.0") {
    return { url: new URL("./host-stub.mjs", import.meta.url).href, shortCircuit: true };
  }
  if (specifier === "flow:plugin/dependencies@0.1.0") {
    return { url: new URL("./dependencies-stub.mjs", import.meta.url).href, shortCircuit: true };
  }
  if (specifier === "wasi:cli/environment@0.2.12") {
    return { url: new URL("./environment-stub.mjs", import.meta.url).href, shortCircuit: true };
  }
  return next(specifier, context);
}
