import { childElement, childText, escapeXml, instanceType, parseXml, XmlSyntaxError, xmlNamespaces } from './xml.js';

describe('parseXml', () => {
  it('reads an ATOM entry as the SDK writes it, resolving namespaces of elements, attributes and xsi:type values', () => {
    const root = parseXml(
      '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><entry xmlns="http://www.w3.org/2005/Atom"><updated>2024-01-01T00:00:00Z</updated>' +
        '<content type="application/xml"><RuleDescription xmlns="http://schemas.microsoft.com/netservices/2010/10/servicebus/connect" xmlns:i="http://www.w3.org/2001/XMLSchema-instance">' +
        '<Filter p4:type="CorrelationFilter" xmlns:p4="http://www.w3.org/2001/XMLSchema-instance"><Label>red</Label><Properties><KeyValueOfstringanyType><Key>n</Key>' +
        '<Value p4:type="l28:double" xmlns:l28="http://www.w3.org/2001/XMLSchema">2</Value></KeyValueOfstringanyType></Properties></Filter></RuleDescription></content></entry>',
    );
    expect([root.localName, root.namespace]).toEqual(['entry', xmlNamespaces.atom]);
    const description = childElement(root, 'content')!.children[0]!;
    expect([description.localName, description.namespace]).toEqual(['RuleDescription', xmlNamespaces.serviceBus]);
    const filter = childElement(description, 'Filter')!;
    expect(instanceType(filter)).toEqual({ namespace: xmlNamespaces.serviceBus, localName: 'CorrelationFilter' });
    expect(childText(filter, 'Label')).toBe('red');
    const value = childElement(childElement(childElement(filter, 'Properties')!, 'KeyValueOfstringanyType')!, 'Value')!;
    expect(instanceType(value)).toEqual({ namespace: xmlNamespaces.schema, localName: 'double' });
  });

  it('decodes entities, character references and CDATA, and skips comments', () => {
    const root = parseXml("<a t='&lt;&#65;&#x42;'>x &amp; y<!-- note --><![CDATA[<raw>]]></a>");
    expect(root.text).toBe('x & y<raw>');
    expect(root.attributes[0]!.value).toBe('<AB');
  });

  it('round-trips text escaped with escapeXml', () => {
    const text = `1 < 2 & "quotes" 'too' > 0`;
    expect(parseXml(`<a v="${escapeXml(text)}">${escapeXml(text)}</a>`)).toMatchObject({ text, attributes: [{ value: text }] });
  });

  it.each([
    ['<!DOCTYPE a [<!ENTITY x "y">]><a/>', /document type declarations are not accepted/],
    ['<a><b></a>', /<\/a> closes <b>/],
    ['<a>', /element <a> is not closed/],
    ['<p:a/>', /prefix "p" of p:a is not declared/],
    ['<a>&unknown;</a>', /unknown entity &unknown;/],
    ['<a x="1" x="2"/>', /attribute x appears twice/],
    ['<a/><b/>', /unexpected content after the root element/],
  ])('refuses %s, saying where and why', (source, message) => {
    expect(() => parseXml(source)).toThrow(XmlSyntaxError);
    expect(() => parseXml(source)).toThrow(message);
  });

  it('refuses elements nested deeper than 64 levels', () => {
    expect(() => parseXml(`${'<a>'.repeat(100)}${'</a>'.repeat(100)}`)).toThrow(/deeper than 64/);
  });
});
