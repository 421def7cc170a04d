// Outside a component there is no host: tests set the environment an
// action sees through `variables`.
export const variables = [];
export function getEnvironment() {
  return variables;
}
