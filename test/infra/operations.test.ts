/**
 * What the operator gets from the template (issue 25), in the compiled ARM template: the storage lifecycle rule that
 * deletes old job records (JOB_RETENTION_DAYS + 1 days, on the jobs container, the same days as the app setting),
 * and the alert rules on the Application Insights resource — failed imports over a threshold, any poison message,
 * function failures — with an action group only when an e-mail or a webhook is given (the webhook a secure parameter).
 */
import { describe, expect, it } from 'vitest';
import { evaluate, parameterValues } from './arm-eval.js';
import {
  allResources,
  ensureCompiled,
  loadTemplate,
  moduleParam,
  moduleTemplate,
  secureParams,
  type Json,
  type JsonObject,
} from './compiled.js';

const build = ensureCompiled({ force: process.env.OCI_IMPORT_REQUIRE_BICEP === '1' });

describe.runIf(build.status === 'ok')('infra: retention and alerts in the compiled template', () => {
  const template = loadTemplate();
  const resources = allResources(template);

  it('a lifecycle rule deletes block blobs of the jobs container JOB_RETENTION_DAYS + 1 days after their last change', () => {
    const policies = resources.filter((r) => r.type === 'Microsoft.Storage/storageAccounts/managementPolicies');
    expect(policies).toHaveLength(1);
    expect(policies[0]!.module).toBe('storage');
    expect(String(policies[0]!.name)).toContain("'default'");
    const rules = ((policies[0]!.properties as JsonObject).policy as JsonObject).rules as JsonObject[];
    expect(rules).toHaveLength(1);
    const definition = rules[0]!.definition as JsonObject;
    expect(definition.filters).toEqual({
      blobTypes: ['blockBlob'],
      prefixMatch: ["[format('{0}/', parameters('jobsContainerName'))]"],
    });
    expect(((definition.actions as JsonObject).baseBlob as JsonObject).delete).toEqual({
      daysAfterModificationGreaterThan: "[add(parameters('jobRetentionDays'), 1)]",
    });
    // the same parameter sets the app's JOB_RETENTION_DAYS and the storage module's days
    expect(moduleParam(template, 'storage', 'jobRetentionDays')).toBe("[parameters('jobRetentionDays')]");
    expect(JSON.stringify(template)).toContain('"JOB_RETENTION_DAYS":"[string(parameters(\'jobRetentionDays\'))]"');
    expect(template.parameters.jobRetentionDays).toMatchObject({ type: 'int', defaultValue: 30, minValue: 1 });
  });

  it('three log alert rules on the Application Insights component: failed imports, poison messages, function failures', () => {
    const alerts = moduleTemplate(template, 'alerts');
    const rules = resources.filter((r) => r.type === 'Microsoft.Insights/scheduledQueryRules');
    expect(rules).toHaveLength(1); // one resource, copied over the rules
    expect(JSON.stringify((rules[0]!.copy as JsonObject).count)).toContain("variables('rules')");
    const ctx = {
      parameters: parameterValues(alerts, {
        location: 'westeurope',
        tags: {},
        appInsightsId: '/subscriptions/x/appi',
        namePrefix: 'p',
        alertEmail: '',
        alertWebhookUrl: '',
      }),
      variables: alerts.variables as JsonObject,
      reference: () => null,
    };
    const list = evaluate((alerts.variables as JsonObject).rules as Json, ctx) as JsonObject[];
    expect(list.map((r) => r.name)).toEqual(['failed-imports', 'poison-message', 'function-failures']);
    const byName = Object.fromEntries(list.map((r) => [String(r.name), r]));
    expect(byName['failed-imports']!.query).toContain('"oci_import.imports"');
    expect(byName['failed-imports']!.query).toContain('"failed"');
    expect(byName['failed-imports']!.threshold).toBe(5);
    expect(byName['poison-message']!.query).toContain('"importPoison"');
    expect(byName['poison-message']!.threshold).toBe(0);
    expect(byName['function-failures']!.query).toContain('success == false');
    const props = rules[0]!.properties as JsonObject;
    expect(JSON.stringify(props.scopes)).toContain("parameters('appInsightsId')");
    // wired to the App Insights resource of the monitoring module
    expect(moduleParam(template, 'alerts', 'appInsightsId')).toContain("'monitoring'");
    expect(JSON.stringify(moduleTemplate(template, 'monitoring').outputs.appInsightsId)).toContain(
      'Microsoft.Insights/components',
    );
  });

  it('an action group only with an e-mail or a webhook; the webhook URL a secure parameter', () => {
    const groups = resources.filter((r) => r.type === 'Microsoft.Insights/actionGroups');
    expect(groups).toHaveLength(1);
    expect(groups[0]!.condition).toBe("[variables('notify')]");
    expect(secureParams(template)).toContain('alertWebhookUrl');
    expect(secureParams(moduleTemplate(template, 'alerts'))).toContain('alertWebhookUrl');
    const alerts = moduleTemplate(template, 'alerts');
    const notify = (email: string, webhook: string) =>
      evaluate((alerts.variables as JsonObject).notify as Json, {
        parameters: parameterValues(alerts, {
          location: 'x',
          tags: {},
          appInsightsId: 'i',
          namePrefix: 'p',
          alertEmail: email,
          alertWebhookUrl: webhook,
        }),
        variables: alerts.variables as JsonObject,
        reference: () => null,
      });
    expect(notify('', '')).toBe(false);
    expect(notify('ops@example.com', '')).toBe(true);
    expect(notify('', 'https://hooks.example/x')).toBe(true);
  });
});
