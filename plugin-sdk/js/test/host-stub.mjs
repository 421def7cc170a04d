export const records = [];
export function log(level, message) {
  records.push([level, message]);
}
